//! Nearest-neighbour search among voxel coordinates (scipy's `KDTree.query` with `k = 1`, as
//! cyto_dl's clustering uses it): a static k-d tree over integer points, exact squared
//! Euclidean distances. Among equally near points the one listed first wins.

/// A k-d tree over 3-D integer points (2-D points have z = 0).
pub struct NearestPoints {
    /// The points, reordered into the tree (each subtree a contiguous run, its median first).
    nodes: Vec<([i64; 3], usize)>,
}

impl NearestPoints {
    /// The tree of `points`; `usize` in results indexes this slice.
    pub fn new(points: &[[i64; 3]]) -> Self {
        let mut nodes: Vec<([i64; 3], usize)> = points.iter().copied().zip(0..).collect();
        build(&mut nodes, 0);
        NearestPoints { nodes }
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The index of the point nearest to `q` and the squared distance to it; `None` when the
    /// tree is empty.
    pub fn nearest(&self, q: [i64; 3]) -> Option<(usize, i64)> {
        let mut best: Option<(usize, i64)> = None;
        search(&self.nodes, 0, q, &mut best);
        best
    }
}

fn dist2(a: [i64; 3], b: [i64; 3]) -> i64 {
    (0..3).map(|i| (a[i] - b[i]).pow(2)).sum()
}

/// Puts the median along `axis` first and builds both halves after it.
fn build(nodes: &mut [([i64; 3], usize)], axis: usize) {
    if nodes.len() <= 1 {
        return;
    }
    let mid = nodes.len() / 2;
    nodes.select_nth_unstable_by_key(mid, |(p, i)| (p[axis], *i));
    nodes.swap(0, mid);
    let next = (axis + 1) % 3;
    let (left, right) = nodes[1..].split_at_mut(mid);
    build(left, next);
    build(right, next);
}

fn better(candidate: (usize, i64), best: Option<(usize, i64)>) -> bool {
    match best {
        None => true,
        Some((bi, bd)) => candidate.1 < bd || (candidate.1 == bd && candidate.0 < bi),
    }
}

fn search(nodes: &[([i64; 3], usize)], axis: usize, q: [i64; 3], best: &mut Option<(usize, i64)>) {
    let Some(((p, i), rest)) = nodes.split_first() else { return };
    let d = dist2(*p, q);
    if better((*i, d), *best) {
        *best = Some((*i, d));
    }
    let mid = nodes.len() / 2;
    let (left, right) = rest.split_at(mid.min(rest.len()));
    let delta = q[axis] - p[axis];
    let (near, far) = if delta < 0 { (left, right) } else { (right, left) };
    let next = (axis + 1) % 3;
    search(near, next, q, best);
    if best.is_none_or(|(_, bd)| delta * delta <= bd) {
        search(far, next, q, best);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The tree agrees with a brute-force search, ties included (the first listed point wins).
    #[test]
    fn nearest_matches_brute_force() {
        let mut rng = Rng::seed_from(3);
        let mut pick = |n: f64| rng.uniform_range(0.0, n).floor() as i64;
        let points: Vec<[i64; 3]> = (0..300).map(|_| [pick(6.0), pick(20.0), pick(20.0)]).collect();
        let tree = NearestPoints::new(&points);
        for _ in 0..500 {
            let q = [pick(8.0) - 1, pick(24.0) - 2, pick(24.0) - 2];
            let want = points.iter().enumerate().map(|(i, p)| (dist2(*p, q), i)).min().map(|(d, i)| (i, d));
            assert_eq!(tree.nearest(q), want, "query {q:?}");
        }
        assert!(NearestPoints::new(&[]).nearest([0, 0, 0]).is_none());
    }
}
