//! A convolution's forward pass and input gradient as one hand-written CubeCL kernel (CUDA and
//! wgpu), exact f32 like burn's direct kernels, reading `[N, C, Z, Y, X]` through its strides.
//!
//! burn 0.21's direct convolution works channels-last: every forward pass and every input
//! gradient first copies its NCDHW input (or output gradient) and the weight into channels-last
//! buffers (`into_contiguous_aligned`, two launches and two buffers per convolution: 21 of the 138
//! launches of a small DynUNet forward pass on wgpu, docs/gpu-fusion-research.md §5), and its
//! input gradient is wrong where a kernel is shorter than its stride ([`super::conv`]). Both are
//! the same *gather*: each result voxel sums the weighted source voxels that reach it.
//! - forward: `y[n, o, v] = b[o] + Σ_c Σ_tap w[o, c, tap] · x[n, c, v·s - p + tap]`;
//! - input gradient: `dx[n, c, u] = Σ_o Σ_tap w[o, c, tap] · dy[n, o, (u + p - tap) / s]`, over
//!   the taps for which the division is exact and lands in the volume (an input voxel no output
//!   reads gets zero, so gaps need no rewrite).
//!
//! One unit computes one result voxel for a tile of result channels (the source voxel it reads
//! once per tap serves the whole tile), one cube covers a run of voxels of one sample and one
//! tile, so every unit of a cube reads the same weights; taps and strides are fixed at comptime.
//! The result is contiguous NCDHW.
//!
//! `CYTODL_GPU_GATHER=off` turns the kernel off for the process (burn's direct kernels, with
//! [`super::conv`]'s gap rewrite, run instead): to time the two on a GPU (`scripts/gpu_check.sh`),
//! or to get going again should a GPU driver mistranslate it.

use std::sync::OnceLock;

use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape};
use burn_cubecl::cubecl::{CubeCount, CubeDim};
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeRuntime;

/// Units per cube.
const UNITS: usize = 128;
/// Kernel taps (`kz · ky · kx`) the kernel takes (unrolled): every DynUNet kernel (3x3x3,
/// 1x3x3, 1x1x1, 2x2x2).
const MAX_TAPS: usize = 32;
/// Result channels per unit, largest first: the largest that divides the result's channels.
const TILES: [usize; 4] = [8, 4, 2, 1];
/// Cubes in one dimension of a launch (wgpu's limit).
const MAX_CUBES: usize = 65535;

mod kernel {
    use burn_cubecl::cubecl;
    use cubecl::prelude::*;

    /// Whether result position `at` along an axis reads the source through tap `tap`, and where:
    /// forward `at · stride - pad + tap`; input gradient `(at + pad - tap) / stride` when the
    /// division is exact. `len` is the source's length along the axis.
    #[cube]
    fn source_position(at: i32, tap: i32, pad: i32, len: i32, #[comptime] stride: usize, #[comptime] gradient: bool) -> (bool, i32) {
        let s = comptime![stride as i32];
        if gradient {
            let reach = at + pad - tap;
            let q = reach / s;
            (reach >= 0 && reach == q * s && q < len, q)
        } else {
            let p = at * s - pad + tap;
            (p >= 0 && p < len, p)
        }
    }

    /// Result voxel `CUBE_POS_X · CUBE_DIM_X + UNIT_POS_X` of sample `CUBE_POS_Z`, for result
    /// channels `CUBE_POS_Y · tile ..` (see the module docs). `weight` is `[O, C, kz, ky, kx]`:
    /// for the forward pass its first axis indexes the result, for the gradient its second.
    #[cube(launch)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gather<F: Float>(
        source: &Tensor<F>,
        weight: &Tensor<F>,
        bias: &Tensor<F>,
        result: &mut Tensor<F>,
        pad_z: u32,
        pad_y: u32,
        pad_x: u32,
        #[comptime] kz: usize,
        #[comptime] ky: usize,
        #[comptime] kx: usize,
        #[comptime] sz: usize,
        #[comptime] sy: usize,
        #[comptime] sx: usize,
        #[comptime] tile: usize,
        #[comptime] has_bias: bool,
        #[comptime] gradient: bool,
        #[define(F)] _dtype: StorageType,
    ) {
        let (res_w, res_h, res_d) = (result.shape(4), result.shape(3), result.shape(2));
        let volume = res_d * res_h * res_w;
        let v = CUBE_POS_X as usize * CUBE_DIM_X as usize + UNIT_POS_X as usize;
        if v >= volume {
            terminate!();
        }
        let n = CUBE_POS_Z as usize;
        let r0 = CUBE_POS_Y as usize * tile;
        let (xr, rest) = ((v % res_w) as i32, v / res_w);
        let (yr, zr) = ((rest % res_h) as i32, (rest / res_h) as i32);
        let (src_d, src_h, src_w) = (source.shape(2) as i32, source.shape(3) as i32, source.shape(4) as i32);
        let mut weight_result = weight.stride(0);
        let mut weight_source = weight.stride(1);
        if gradient {
            weight_result = weight.stride(1);
            weight_source = weight.stride(0);
        }

        let mut sums = Array::<F>::new(tile);
        #[unroll]
        for t in 0..tile {
            sums[t] = F::new(0.0);
            if has_bias {
                sums[t] = bias[r0 + t];
            }
        }
        for s in 0..source.shape(1) {
            let source_base = n * source.stride(0) + s * source.stride(1);
            let weight_base = r0 * weight_result + s * weight_source;
            #[unroll]
            for a in 0..kz {
                let (in_z, zs) = source_position(zr, a as i32, pad_z as i32, src_d, sz, gradient);
                if in_z {
                    #[unroll]
                    for b in 0..ky {
                        let (in_y, ys) = source_position(yr, b as i32, pad_y as i32, src_h, sy, gradient);
                        if in_y {
                            #[unroll]
                            for d in 0..kx {
                                let (in_x, xs) = source_position(xr, d as i32, pad_x as i32, src_w, sx, gradient);
                                if in_x {
                                    let value =
                                        source[source_base + zs as usize * source.stride(2) + ys as usize * source.stride(3) + xs as usize * source.stride(4)];
                                    let tap = weight_base + a * weight.stride(2) + b * weight.stride(3) + d * weight.stride(4);
                                    #[unroll]
                                    for t in 0..tile {
                                        sums[t] += value * weight[tap + t * weight_result];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let base = (n * result.shape(1) + r0) * volume + v;
        #[unroll]
        for t in 0..tile {
            result[base + t * volume] = sums[t];
        }
    }
}

/// The forward pass (`[N, O, Zo, Yo, Xo]`, contiguous) of `x` convolved with `w` plus `bias`, or
/// `None` where the kernel does not apply (the caller runs burn's; see [`tile`]).
pub(super) fn forward<R: CubeRuntime>(x: &CubeTensor<R>, w: &CubeTensor<R>, bias: Option<&CubeTensor<R>>, options: &ConvOptions<3>) -> Option<CubeTensor<R>> {
    let out = output_shape(x.meta.shape(), w.meta.shape(), options)?;
    gather(x, w, bias, out, options, false)
}

/// The input gradient (`in_shape`, contiguous) of a convolution with `w` whose output gradient
/// is `dy`, or `None` where the kernel does not apply (the caller runs burn's; see [`tile`]).
pub(super) fn input_grad<R: CubeRuntime>(dy: &CubeTensor<R>, w: &CubeTensor<R>, in_shape: &Shape, options: &ConvOptions<3>) -> Option<CubeTensor<R>> {
    gather(dy, w, None, in_shape.clone(), options, true)
}

/// Whether this kernel runs both the forward pass and the input gradient of a convolution of
/// an `x_shape` input with a `w_shape` weight, both of `dtype`: it is then right where a kernel
/// is shorter than its stride, and [`super::conv`] needs no rewrite.
pub(super) fn takes(x_shape: &Shape, w_shape: &Shape, dtype: DType, options: &ConvOptions<3>) -> bool {
    if !enabled() {
        return false;
    }
    let Some(out) = output_shape(x_shape, w_shape, options) else {
        return false;
    };
    dtype == DType::F32 && tile(x_shape, w_shape, &out, options).is_some() && tile(&out, w_shape, x_shape, options).is_some()
}

/// Whether the kernel runs in this process: yes unless `CYTODL_GPU_GATHER` is `off` (or `0`,
/// `false`, `no`); read once, see the module docs. Any other value than those and `on`, `1`,
/// `true`, `yes` warns and keeps the kernel, as `CYTODL_GPU_CONV` does with an unknown value.
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        let value = std::env::var("CYTODL_GPU_GATHER").unwrap_or_default();
        match value.to_ascii_lowercase().as_str() {
            "off" | "0" | "false" | "no" => {
                eprintln!("note: CYTODL_GPU_GATHER={value}: burn's direct convolution kernels run instead of cytodl's gather kernel");
                false
            }
            "" | "on" | "1" | "true" | "yes" => true,
            _ => {
                eprintln!("warning: CYTODL_GPU_GATHER={value}: expected `off` or `on`; keeping cytodl's gather kernel");
                true
            }
        }
    })
}

/// `[N, O, Zo, Yo, Xo]` of a convolution, or `None` where the padded input is shorter than the
/// kernel (burn's op then reports it).
fn output_shape(x_shape: &Shape, w_shape: &Shape, options: &ConvOptions<3>) -> Option<Shape> {
    let mut out = [x_shape[0], w_shape[0], 0, 0, 0];
    for axis in 0..3 {
        let (len, k, s) = (x_shape[axis + 2] + 2 * options.padding[axis], w_shape[axis + 2], options.stride[axis]);
        if len < k || s == 0 {
            return None;
        }
        out[axis + 2] = (len - k) / s + 1;
    }
    Some(Shape::new(out))
}

/// The result channels each unit computes for a gather from `source_shape` into
/// `result_shape`, or `None` where the kernel does not apply: no groups, no dilation, at most
/// [`MAX_TAPS`] taps, sizes within the launch and index limits.
fn tile(source_shape: &Shape, w_shape: &Shape, result_shape: &Shape, options: &ConvOptions<3>) -> Option<usize> {
    let result_channels = result_shape[1];
    let tile = TILES.into_iter().find(|t| result_channels.is_multiple_of(*t))?;
    let volume = result_shape[2] * result_shape[3] * result_shape[4];
    let fits_i32 = [source_shape, w_shape, result_shape].iter().all(|s| s.num_elements() <= i32::MAX as usize);
    let supported = options.groups == 1
        && options.dilation == [1; 3]
        && options.stride.iter().all(|&s| s > 0)
        && w_shape[2] * w_shape[3] * w_shape[4] <= MAX_TAPS
        && volume > 0
        && volume.div_ceil(UNITS) <= MAX_CUBES
        && result_channels / tile <= MAX_CUBES
        && result_shape[0] <= MAX_CUBES
        && fits_i32;
    supported.then_some(tile)
}

/// The gather kernel's launch on f32 operands, or `None` where it does not apply ([`tile`]).
fn gather<R: CubeRuntime>(
    source: &CubeTensor<R>,
    w: &CubeTensor<R>,
    bias: Option<&CubeTensor<R>>,
    result_shape: Shape,
    options: &ConvOptions<3>,
    gradient: bool,
) -> Option<CubeTensor<R>> {
    if !enabled() || ![Some(source), Some(w), bias].into_iter().flatten().all(|t| t.dtype == DType::F32) {
        return None;
    }
    let ws = w.meta.shape();
    let kernel = [ws[2], ws[3], ws[4]];
    let tile = tile(source.meta.shape(), ws, &result_shape, options)?;
    let (result_channels, volume) = (result_shape[1], result_shape[2] * result_shape[3] * result_shape[4]);
    let result = empty_device_dtype(source.client.clone(), source.device.clone(), result_shape.clone(), source.dtype);
    let [pz, py, px] = options.padding.map(|p| p as u32);
    kernel::gather::launch::<R>(
        &source.client,
        CubeCount::Static(volume.div_ceil(UNITS) as u32, (result_channels / tile) as u32, result_shape[0] as u32),
        CubeDim::new_1d(UNITS as u32),
        source.clone().into_tensor_arg(),
        w.clone().into_tensor_arg(),
        bias.unwrap_or(w).clone().into_tensor_arg(),
        result.clone().into_tensor_arg(),
        pz,
        py,
        px,
        kernel[0],
        kernel[1],
        kernel[2],
        options.stride[0],
        options.stride[1],
        options.stride[2],
        tile,
        bias.is_some(),
        gradient,
        source.dtype.into(),
    );
    Some(result)
}

/// The transposed convolution (padding 0, no output padding) of `x: [N, Cin, Z, Y, X]` with
/// `w: [Cin, Cout, kz, ky, kx]` plus `bias`: `[N, Cout, (Z - 1)·sz + kz, ...]`, contiguous, or
/// `None` where the kernel does not apply. It is the input gradient of the convolution with the
/// same weight, `x` in the output gradient's place.
pub(super) fn transposed<R: CubeRuntime>(
    x: &CubeTensor<R>,
    w: &CubeTensor<R>,
    bias: Option<&CubeTensor<R>>,
    options: &ConvOptions<3>,
) -> Option<CubeTensor<R>> {
    let out = transposed_shape(x.meta.shape(), w.meta.shape(), options)?;
    gather(x, w, bias, out, options, true)
}

/// Whether [`transposed`] runs the transposed convolution of an `x_shape` input with a
/// `w_shape` weight, both of `dtype` (so that burn's fusion stream can record it beforehand).
#[cfg(feature = "gpu-fusion")]
pub(super) fn takes_transposed(x_shape: &Shape, w_shape: &Shape, dtype: DType, options: &ConvOptions<3>) -> bool {
    enabled() && dtype == DType::F32 && transposed_shape(x_shape, w_shape, options).is_some_and(|out| tile(x_shape, w_shape, &out, options).is_some())
}

/// The shape of [`transposed`]'s result, or `None` for padding or an empty input (not taken).
pub(super) fn transposed_shape(xs: &Shape, ws: &Shape, options: &ConvOptions<3>) -> Option<Shape> {
    if options.padding != [0; 3] || (2..5).any(|a| xs[a] == 0) {
        return None;
    }
    let length = |axis: usize| (xs[axis] - 1) * options.stride[axis - 2] + ws[axis];
    Some(Shape::new([xs[0], ws[1], length(2), length(3), length(4)]))
}
