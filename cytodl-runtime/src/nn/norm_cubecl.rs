//! Instance normalisation as hand-written CubeCL kernels (CUDA and wgpu without burn's fusion):
//! two launches for the forward pass and two for the backward pass.
//!
//! Through burn's tensor ops ([`super::norm_gpu`]'s formula) one normalisation took 12 launches
//! forward and ~12 backward (two-stage means, centring, variance, square root, affine terms...),
//! plus a copy when the convolution before it left its output in burn's channels-last layout.
//! Here one cube per instance reduces its statistics in shared memory (two passes: mean, then
//! the centred sum of squares, as the tensor-op formula does), and one element-wise kernel
//! applies them. A large instance is split into chunks of [`CHUNK_VOXELS`], one cube each, and a
//! third launch merges the chunks' means and squared deviations (Chan et al.'s pairwise
//! formula, as stable as two passes): the medium model's finest level has 32 instances of
//! 131072 voxels, which one cube each would reduce on 32 of an H200's 132 multiprocessors — the
//! 2.8-5 ms per reduction burn's one-row-per-instance reduce took there (BENCHMARKS.md). The inputs are read through their strides, so a channels-last view needs no
//! copy. The backward pass keeps the input, mean and `rstd` (not the normalised input: one
//! tensor less held per layer) and recomputes `x̂` where it needs it.
//!
//! Every kernel works on `[N, C, Z, Y, X]` tensors of f32; an instance is one `(n, c)`, its
//! index `n * C + c`, and its statistics are stored `[N, C, 1, 1]`.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Shape, Tensor, TensorPrimitive};
use burn_cubecl::cubecl::{CubeCount, CubeDim};
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeRuntime;

use crate::backend::{cast, elementwise_launch, on_cube_runtimes};

/// Units per cube of the reduction kernels (a power of two: the tree sum halves it).
const REDUCE_UNITS: usize = 256;
/// Cubes in one dimension of a launch (wgpu's limit): more instances or chunks take the
/// tensor-op path.
const MAX_CUBES: usize = 65535;
/// Voxels an instance may have and still be reduced by one cube (one launch less than chunks).
const SINGLE_CUBE_VOXELS: usize = 32768;
/// Voxels per cube when an instance is larger than [`SINGLE_CUBE_VOXELS`].
const CHUNK_VOXELS: usize = 8192;

mod kernel {
    use burn_cubecl::cubecl;
    use cubecl::prelude::*;

    /// The position in `t` (`[N, C, Z, Y, X]`, any strides) of voxel `v` of instance `instance`.
    #[cube]
    fn offset<F: Float>(t: &Tensor<F>, instance: usize, v: usize) -> usize {
        let channels = t.shape(1);
        let (n, c) = (instance / channels, instance % channels);
        let (width, height) = (t.shape(4), t.shape(3));
        let (x, rest) = (v % width, v / width);
        let (y, z) = (rest % height, rest / height);
        n * t.stride(0) + c * t.stride(1) + z * t.stride(2) + y * t.stride(3) + x * t.stride(4)
    }

    /// `x̂` at voxel `v` of instance `instance`: `(x - mean) * rstd`.
    #[cube]
    fn normalised<F: Float>(x: &Tensor<F>, mean: &Tensor<F>, rstd: &Tensor<F>, instance: usize, v: usize) -> F {
        (x[offset(x, instance, v)] - mean[instance]) * rstd[instance]
    }

    /// The voxels of one instance.
    #[cube]
    fn volume<F: Float>(t: &Tensor<F>) -> usize {
        t.shape(2) * t.shape(3) * t.shape(4)
    }

    /// The sum of the cube's values in `shared` (one per unit; `CUBE_DIM` a power of two),
    /// seen by every unit.
    #[cube]
    fn cube_sum<F: Float>(shared: &mut SharedMemory<F>) -> F {
        sync_cube();
        let mut active = CUBE_DIM;
        let mut jump = 1;
        while active > 1 {
            active /= 2;
            if UNIT_POS < active {
                let from = shared[(jump * (2 * UNIT_POS + 1)) as usize];
                shared[(jump * 2 * UNIT_POS) as usize] += from;
            }
            jump *= 2;
            sync_cube();
        }
        shared[0]
    }

    /// The sums of the cube's `a` and of its `b` values (one each per unit), seen by every unit:
    /// the two gradient sums.
    #[cube]
    fn cube_sum_pair<F: Float>(a: F, b: F, #[comptime] units: usize) -> (F, F) {
        let mut plain = SharedMemory::<F>::new(units);
        let mut weighted = SharedMemory::<F>::new(units);
        plain[UNIT_POS as usize] = a;
        weighted[UNIT_POS as usize] = b;
        (cube_sum(&mut plain), cube_sum(&mut weighted))
    }

    /// The voxels `[start, end)` of chunk `CUBE_POS_X` of an instance: chunks of `chunk` voxels,
    /// the last one shorter.
    #[cube]
    fn chunk_range(len: usize, chunk: u32) -> (usize, usize) {
        let start = CUBE_POS_X as usize * chunk as usize;
        (start, min(start + chunk as usize, len))
    }

    /// Mean and sum of squared deviations from it of chunk `CUBE_POS_X` of instance `CUBE_POS_Y`
    /// (one cube each; two passes), stored at `instance * CUBE_COUNT_X + chunk`. With `finish`
    /// (one chunk per instance) the mean and `1 / sqrt(var + eps)` instead.
    #[cube(launch)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn chunk_statistics<F: Float>(
        x: &Tensor<F>,
        mean: &mut Tensor<F>,
        second: &mut Tensor<F>,
        eps: f32,
        chunk: u32,
        #[comptime] units: usize,
        #[comptime] finish: bool,
        #[define(F)] _dtype: StorageType,
    ) {
        let instance = CUBE_POS_Y as usize;
        let (start, end) = chunk_range(volume(x), chunk);
        let count = F::cast_from((end - start) as u32);
        let mut shared = SharedMemory::<F>::new(units);
        let mut sum = F::new(0.0);
        let mut v = start + UNIT_POS as usize;
        while v < end {
            sum += x[offset(x, instance, v)];
            v += units;
        }
        shared[UNIT_POS as usize] = sum;
        let mu = cube_sum(&mut shared) / count;
        // Every unit has read the sum before the memory is written again.
        sync_cube();
        let mut squares = F::new(0.0);
        let mut v = start + UNIT_POS as usize;
        while v < end {
            let d = x[offset(x, instance, v)] - mu;
            squares += d * d;
            v += units;
        }
        shared[UNIT_POS as usize] = squares;
        let m2 = cube_sum(&mut shared);
        if UNIT_POS == 0 {
            let at = instance * CUBE_COUNT_X as usize + CUBE_POS_X as usize;
            mean[at] = mu;
            if finish {
                second[at] = F::new(1.0) / (m2 / count + F::cast_from(eps)).sqrt();
            } else {
                second[at] = m2;
            }
        }
    }

    /// Mean and `1 / sqrt(var + eps)` of each instance (one cube each) from its chunks' means and
    /// squared deviations (`[instances, chunks]`): the mean of the means weighted by the chunks'
    /// voxels, then `Σ m2_k + n_k (mean_k - mean)²`.
    #[cube(launch)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn merge_statistics<F: Float>(
        chunk_mean: &Tensor<F>,
        chunk_m2: &Tensor<F>,
        mean: &mut Tensor<F>,
        rstd: &mut Tensor<F>,
        len: u32,
        chunk: u32,
        eps: f32,
        #[comptime] units: usize,
        #[define(F)] _dtype: StorageType,
    ) {
        let instance = CUBE_POS_X as usize;
        let chunks = chunk_mean.shape(1);
        let row = instance * chunks;
        let mut shared = SharedMemory::<F>::new(units);
        let mut sum = F::new(0.0);
        let mut k = UNIT_POS as usize;
        while k < chunks {
            sum += chunk_mean[row + k] * F::cast_from(chunk_voxels(len, chunk, k));
            k += units;
        }
        shared[UNIT_POS as usize] = sum;
        let mu = cube_sum(&mut shared) / F::cast_from(len);
        sync_cube();
        let mut m2 = F::new(0.0);
        let mut k = UNIT_POS as usize;
        while k < chunks {
            let d = chunk_mean[row + k] - mu;
            m2 += chunk_m2[row + k] + F::cast_from(chunk_voxels(len, chunk, k)) * d * d;
            k += units;
        }
        shared[UNIT_POS as usize] = m2;
        let var = cube_sum(&mut shared) / F::cast_from(len);
        if UNIT_POS == 0 {
            mean[instance] = mu;
            rstd[instance] = F::new(1.0) / (var + F::cast_from(eps)).sqrt();
        }
    }

    /// The voxels of chunk `k` of `len` voxels in chunks of `chunk`.
    #[cube]
    fn chunk_voxels(len: u32, chunk: u32, k: usize) -> u32 {
        let start = k as u32 * chunk;
        min(chunk, len - start)
    }

    /// `y = (x - mean) * rstd * w + b` (without `w`, `b` when not `affine`), `y` contiguous.
    #[cube(launch)]
    pub(super) fn normalise<F: Float>(
        x: &Tensor<F>,
        mean: &Tensor<F>,
        rstd: &Tensor<F>,
        weight: &Tensor<F>,
        bias: &Tensor<F>,
        y: &mut Tensor<F>,
        #[comptime] affine: bool,
        #[define(F)] _dtype: StorageType,
    ) {
        let pos = ABSOLUTE_POS;
        if pos >= y.len() {
            terminate!();
        }
        let len = volume(y);
        let (instance, v) = (pos / len, pos % len);
        let xhat = normalised(x, mean, rstd, instance, v);
        if affine {
            let c = instance % y.shape(1);
            y[pos] = xhat * weight[c] + bias[c];
        } else {
            y[pos] = xhat;
        }
    }

    /// `Σ dy` and `Σ dy · x̂` over chunk `CUBE_POS_X` of instance `CUBE_POS_Y` (one cube each),
    /// stored at `instance * CUBE_COUNT_X + chunk`.
    #[cube(launch)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gradient_sums<F: Float>(
        x: &Tensor<F>,
        dy: &Tensor<F>,
        mean: &Tensor<F>,
        rstd: &Tensor<F>,
        sum_dy: &mut Tensor<F>,
        sum_dy_xhat: &mut Tensor<F>,
        chunk: u32,
        #[comptime] units: usize,
        #[define(F)] _dtype: StorageType,
    ) {
        let instance = CUBE_POS_Y as usize;
        let (start, end) = chunk_range(volume(x), chunk);
        let mut a = F::new(0.0);
        let mut b = F::new(0.0);
        let mut v = start + UNIT_POS as usize;
        while v < end {
            let g = dy[offset(dy, instance, v)];
            a += g;
            b += g * normalised(x, mean, rstd, instance, v);
            v += units;
        }
        let (a, b) = cube_sum_pair::<F>(a, b, units);
        if UNIT_POS == 0 {
            let at = instance * CUBE_COUNT_X as usize + CUBE_POS_X as usize;
            sum_dy[at] = a;
            sum_dy_xhat[at] = b;
        }
    }

    /// Each instance's two gradient sums (one cube each) from its chunks' (`[instances, chunks]`).
    #[cube(launch)]
    pub(super) fn merge_sums<F: Float>(
        chunk_dy: &Tensor<F>,
        chunk_dy_xhat: &Tensor<F>,
        sum_dy: &mut Tensor<F>,
        sum_dy_xhat: &mut Tensor<F>,
        #[comptime] units: usize,
        #[define(F)] _dtype: StorageType,
    ) {
        let instance = CUBE_POS_X as usize;
        let chunks = chunk_dy.shape(1);
        let row = instance * chunks;
        let mut a = F::new(0.0);
        let mut b = F::new(0.0);
        let mut k = UNIT_POS as usize;
        while k < chunks {
            a += chunk_dy[row + k];
            b += chunk_dy_xhat[row + k];
            k += units;
        }
        let (a, b) = cube_sum_pair::<F>(a, b, units);
        if UNIT_POS == 0 {
            sum_dy[instance] = a;
            sum_dy_xhat[instance] = b;
        }
    }

    /// `dx = w · rstd · (dy − Σdy / len − x̂ · Σ(dy · x̂) / len)`, `dx` contiguous.
    #[cube(launch)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn input_gradient<F: Float>(
        x: &Tensor<F>,
        dy: &Tensor<F>,
        mean: &Tensor<F>,
        rstd: &Tensor<F>,
        weight: &Tensor<F>,
        sum_dy: &Tensor<F>,
        sum_dy_xhat: &Tensor<F>,
        dx: &mut Tensor<F>,
        #[comptime] affine: bool,
        #[define(F)] _dtype: StorageType,
    ) {
        let pos = ABSOLUTE_POS;
        if pos >= dx.len() {
            terminate!();
        }
        let len = volume(dx);
        let (instance, v) = (pos / len, pos % len);
        let n = F::cast_from(len as u32);
        let xhat = normalised(x, mean, rstd, instance, v);
        let centred = dy[offset(dy, instance, v)] - sum_dy[instance] / n - xhat * (sum_dy_xhat[instance] / n);
        let mut scale = rstd[instance];
        if affine {
            scale *= weight[instance % dx.shape(1)];
        }
        dx[pos] = centred * scale;
    }
}

/// The forward pass `(y, mean, rstd)` when `I` is a CubeCL backend without fusion and the
/// kernels take `x`; `None` otherwise (the caller runs burn's tensor ops).
#[allow(clippy::type_complexity)]
pub(super) fn forward<I: Backend>(
    x: &Tensor<I, 5>,
    affine: Option<&(Tensor<I, 1>, Tensor<I, 1>)>,
    eps: f64,
) -> Option<(Tensor<I, 5>, Tensor<I, 4>, Tensor<I, 4>)> {
    on_cube_runtimes!(|R, BT| forward_on::<I, R>(x, affine, eps))
}

/// The backward pass `(dx, Σ dy, Σ dy · x̂)` as [`forward`] decides.
#[allow(clippy::type_complexity)]
pub(super) fn backward<I: Backend>(
    x: &Tensor<I, 5>,
    dy: &Tensor<I, 5>,
    mean: &Tensor<I, 4>,
    rstd: &Tensor<I, 4>,
    weight: Option<&Tensor<I, 1>>,
    input_grad: bool,
) -> Option<(Option<Tensor<I, 5>>, Tensor<I, 4>, Tensor<I, 4>)> {
    on_cube_runtimes!(|R, BT| backward_on::<I, R>(x, dy, mean, rstd, weight, input_grad))
}

/// `t`'s primitive when `I`'s is a CubeCL tensor of runtime `R`.
fn primitive<I: Backend, R: CubeRuntime, const D: usize>(t: &Tensor<I, D>) -> Option<CubeTensor<R>> {
    cast(t.clone().into_primitive().tensor())
}

/// A kernel's result as `I`'s tensor.
fn tensor<I: Backend, R: CubeRuntime, const D: usize>(t: CubeTensor<R>) -> Option<Tensor<I, D>> {
    Some(Tensor::from_primitive(TensorPrimitive::Float(cast(t)?)))
}

#[allow(clippy::type_complexity)]
fn forward_on<I: Backend, R: CubeRuntime>(
    x: &Tensor<I, 5>,
    affine: Option<&(Tensor<I, 1>, Tensor<I, 1>)>,
    eps: f64,
) -> Option<(Tensor<I, 5>, Tensor<I, 4>, Tensor<I, 4>)> {
    let xc = primitive::<I, R, 5>(x).filter(supports)?;
    let affine = match affine {
        Some((w, b)) => Some((primitive::<I, R, 1>(w)?, primitive::<I, R, 1>(b)?)),
        None => None,
    };
    let [y, mean, rstd] = launch_forward(&xc, affine.as_ref().map(|(w, b)| (w, b)), eps);
    Some((tensor(y)?, tensor(mean)?, tensor(rstd)?))
}

#[allow(clippy::type_complexity)]
fn backward_on<I: Backend, R: CubeRuntime>(
    x: &Tensor<I, 5>,
    dy: &Tensor<I, 5>,
    mean: &Tensor<I, 4>,
    rstd: &Tensor<I, 4>,
    weight: Option<&Tensor<I, 1>>,
    input_grad: bool,
) -> Option<(Option<Tensor<I, 5>>, Tensor<I, 4>, Tensor<I, 4>)> {
    let xc = primitive::<I, R, 5>(x).filter(supports)?;
    let dyc = primitive::<I, R, 5>(dy).filter(supports)?;
    let weight = match weight {
        Some(w) => Some(primitive::<I, R, 1>(w)?),
        None => None,
    };
    let (dx, sum_dy, sum_dy_xhat) = launch_backward(&xc, &dyc, &primitive(mean)?, &primitive(rstd)?, weight.as_ref(), input_grad);
    let dx = match dx {
        Some(dx) => Some(tensor(dx)?),
        None => None,
    };
    Some((dx, tensor(sum_dy)?, tensor(sum_dy_xhat)?))
}

/// Whether the kernels take `x`: f32, at least one voxel, at most [`MAX_CUBES`] instances and
/// chunks per instance, volumes that fit the kernels' 32-bit counts.
fn supports<R: CubeRuntime>(x: &CubeTensor<R>) -> bool {
    let shape = x.meta.shape();
    if x.dtype != DType::F32 || shape.num_dims() != 5 {
        return false;
    }
    let volume = shape[2] * shape[3] * shape[4];
    shape[0] * shape[1] <= MAX_CUBES && (1..=u32::MAX as usize).contains(&volume) && chunking(volume).0 <= MAX_CUBES
}

/// `(chunks, voxels per chunk)` of an instance of `volume` voxels (see [`CHUNK_VOXELS`]).
fn chunking(volume: usize) -> (usize, usize) {
    match volume <= SINGLE_CUBE_VOXELS {
        true => (1, volume),
        false => (volume.div_ceil(CHUNK_VOXELS), CHUNK_VOXELS),
    }
}

/// `(instances, voxels per instance)` of `[N, C, Z, Y, X]`.
fn instances_and_volume<R: CubeRuntime>(x: &CubeTensor<R>) -> (usize, usize) {
    let shape = x.meta.shape();
    (shape[0] * shape[1], shape[2] * shape[3] * shape[4])
}

fn empty<R: CubeRuntime>(like: &CubeTensor<R>, shape: Shape) -> CubeTensor<R> {
    empty_device_dtype(like.client.clone(), like.device.clone(), shape, like.dtype)
}

/// `[N, C, 1, 1]` for `x`'s statistics.
fn stats_shape<R: CubeRuntime>(x: &CubeTensor<R>) -> Shape {
    let shape = x.meta.shape();
    Shape::new([shape[0], shape[1], 1, 1])
}

/// One cube per instance.
fn per_instance_launch(instances: usize) -> (CubeCount, CubeDim) {
    (CubeCount::Static(instances as u32, 1, 1), CubeDim::new_1d(REDUCE_UNITS as u32))
}

/// One cube per chunk of each instance.
fn per_chunk_launch(instances: usize, chunks: usize) -> (CubeCount, CubeDim) {
    (CubeCount::Static(chunks as u32, instances as u32, 1), CubeDim::new_1d(REDUCE_UNITS as u32))
}

/// `(mean, rstd)` of each instance of `x` (`[N, C, 1, 1]`): one launch, or with chunks
/// one per chunk and a merge.
fn launch_statistics<R: CubeRuntime>(x: &CubeTensor<R>, eps: f32) -> (CubeTensor<R>, CubeTensor<R>) {
    let (mean, rstd) = (empty(x, stats_shape(x)), empty(x, stats_shape(x)));
    let (instances, volume) = instances_and_volume(x);
    let (chunks, chunk) = chunking(volume);
    let (count, dim) = per_chunk_launch(instances, chunks);
    let reduce_chunks = |first: &CubeTensor<R>, second: &CubeTensor<R>, finish: bool| {
        kernel::chunk_statistics::launch::<R>(
            &x.client,
            count.clone(),
            dim,
            x.clone().into_tensor_arg(),
            first.clone().into_tensor_arg(),
            second.clone().into_tensor_arg(),
            eps,
            chunk as u32,
            REDUCE_UNITS,
            finish,
            x.dtype.into(),
        )
    };
    if chunks == 1 {
        reduce_chunks(&mean, &rstd, true);
        return (mean, rstd);
    }
    let (chunk_mean, chunk_m2) = (empty(x, Shape::new([instances, chunks])), empty(x, Shape::new([instances, chunks])));
    reduce_chunks(&chunk_mean, &chunk_m2, false);
    let (count, dim) = per_instance_launch(instances);
    kernel::merge_statistics::launch::<R>(
        &x.client,
        count,
        dim,
        chunk_mean.into_tensor_arg(),
        chunk_m2.into_tensor_arg(),
        mean.clone().into_tensor_arg(),
        rstd.clone().into_tensor_arg(),
        volume as u32,
        chunk as u32,
        eps,
        REDUCE_UNITS,
        x.dtype.into(),
    );
    (mean, rstd)
}

/// `(y, mean, rstd)` of `x` (checked with [`supports`]); `affine` is `(weight, bias)`.
fn launch_forward<R: CubeRuntime>(x: &CubeTensor<R>, affine: Option<(&CubeTensor<R>, &CubeTensor<R>)>, eps: f64) -> [CubeTensor<R>; 3] {
    let (mean, rstd) = launch_statistics(x, eps as f32);
    let y = empty(x, x.meta.shape().clone());
    let (count, dim) = elementwise_launch(&y);
    // Without affine parameters the statistics stand in for them (the kernel does not read them).
    let (weight, bias) = affine.unwrap_or((&mean, &rstd));
    kernel::normalise::launch::<R>(
        &x.client,
        count,
        dim,
        x.clone().into_tensor_arg(),
        mean.clone().into_tensor_arg(),
        rstd.clone().into_tensor_arg(),
        weight.clone().into_tensor_arg(),
        bias.clone().into_tensor_arg(),
        y.clone().into_tensor_arg(),
        affine.is_some(),
        x.dtype.into(),
    );
    [y, mean, rstd]
}

/// `(Σ dy, Σ dy · x̂)` of each instance (`[N, C, 1, 1]`): one launch, or with chunks one per
/// chunk and a merge.
fn launch_gradient_sums<R: CubeRuntime>(x: &CubeTensor<R>, dy: &CubeTensor<R>, mean: &CubeTensor<R>, rstd: &CubeTensor<R>) -> (CubeTensor<R>, CubeTensor<R>) {
    let (instances, volume) = instances_and_volume(x);
    let (chunks, chunk) = chunking(volume);
    let partial = match chunks {
        1 => stats_shape(x),
        _ => Shape::new([instances, chunks]),
    };
    let (chunk_dy, chunk_dy_xhat) = (empty(x, partial.clone()), empty(x, partial));
    let (count, dim) = per_chunk_launch(instances, chunks);
    kernel::gradient_sums::launch::<R>(
        &x.client,
        count,
        dim,
        x.clone().into_tensor_arg(),
        dy.clone().into_tensor_arg(),
        mean.clone().into_tensor_arg(),
        rstd.clone().into_tensor_arg(),
        chunk_dy.clone().into_tensor_arg(),
        chunk_dy_xhat.clone().into_tensor_arg(),
        chunk as u32,
        REDUCE_UNITS,
        x.dtype.into(),
    );
    if chunks == 1 {
        return (chunk_dy, chunk_dy_xhat);
    }
    let (sum_dy, sum_dy_xhat) = (empty(x, stats_shape(x)), empty(x, stats_shape(x)));
    let (count, dim) = per_instance_launch(instances);
    kernel::merge_sums::launch::<R>(
        &x.client,
        count,
        dim,
        chunk_dy.into_tensor_arg(),
        chunk_dy_xhat.into_tensor_arg(),
        sum_dy.clone().into_tensor_arg(),
        sum_dy_xhat.clone().into_tensor_arg(),
        REDUCE_UNITS,
        x.dtype.into(),
    );
    (sum_dy, sum_dy_xhat)
}

/// `(dx, Σ dy, Σ dy · x̂)` for the upstream gradient `dy` (`dx` only when `input_grad`; the sums
/// `[N, C, 1, 1]`); `weight` is the affine weight.
fn launch_backward<R: CubeRuntime>(
    x: &CubeTensor<R>,
    dy: &CubeTensor<R>,
    mean: &CubeTensor<R>,
    rstd: &CubeTensor<R>,
    weight: Option<&CubeTensor<R>>,
    input_grad: bool,
) -> (Option<CubeTensor<R>>, CubeTensor<R>, CubeTensor<R>) {
    let (sum_dy, sum_dy_xhat) = launch_gradient_sums(x, dy, mean, rstd);
    let dx = input_grad.then(|| {
        let dx = empty(x, x.meta.shape().clone());
        let (count, dim) = elementwise_launch(&dx);
        kernel::input_gradient::launch::<R>(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            dy.clone().into_tensor_arg(),
            mean.clone().into_tensor_arg(),
            rstd.clone().into_tensor_arg(),
            weight.unwrap_or(rstd).clone().into_tensor_arg(),
            sum_dy.clone().into_tensor_arg(),
            sum_dy_xhat.clone().into_tensor_arg(),
            dx.clone().into_tensor_arg(),
            weight.is_some(),
            x.dtype.into(),
        );
        dx
    });
    (dx, sum_dy, sum_dy_xhat)
}
