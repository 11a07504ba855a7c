//! A convolution's weight gradient as a hand-written CubeCL kernel (CUDA and wgpu without
//! burn's fusion), exact f32 like burn's direct kernels.
//!
//! burn 0.21's direct weight gradient is a convolution of the input with the output gradient as
//! a kernel the size of the volume: each of the `O x C x taps` results is one unit summing over
//! every voxel of the batch in turn (a few thousand units for the whole GPU: 450 ms for the
//! medium DynUNet step on an H200, BENCHMARKS.md), and both operands are first copied into
//! channels-last layouts with the batch axis last (~3 copies per convolution: most of the 33
//! copies of a small DynUNet backward pass on wgpu). Here one cube per tile of output channels
//! `o` (up to 8), input channel `c` and chunk of output voxels reads `x` and `dy` through their
//! strides (no copies); each unit keeps the `tile x taps` sums of its voxels in registers — an
//! input value read once per tap serves the whole tile — and the cube adds them up in shared
//! memory, one output channel at a time; with more than one chunk a second launch adds the
//! chunks' sums.
//!
//! `dw[o, c, a, b, d] = Σ_n Σ_(zo,yo,xo) dy[n, o, zo, yo, xo] · x[n, c, zo·s - p + a, ...]`,
//! inputs outside the volume being the zero padding.

use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape};
use burn_cubecl::cubecl::{CubeCount, CubeDim};
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeRuntime;

use crate::backend::elementwise_launch;

/// Units per cube (a power of two: the tree sum halves it). With [`MAX_TAPS`] it bounds the
/// shared memory to 16 KiB, WebGPU's default limit.
const UNITS: usize = 128;
/// Kernel taps (`kz · ky · kx`) the kernel takes: every DynUNet kernel (3x3x3, 1x3x3, 1x1x1).
const MAX_TAPS: usize = 32;
/// Output voxels (over the batch) per cube: 32 per unit.
const CHUNK: usize = 32 * UNITS;
/// Cubes in one dimension of a launch (wgpu's limit).
const MAX_CUBES: usize = 65535;
/// Output channels per cube, largest first: the largest that divides the output channels and
/// keeps a unit's sums (`tile x taps`) within [`MAX_SUMS`] registers.
const TILES: [usize; 4] = [8, 4, 2, 1];
/// Sums a unit keeps: 4 output channels of a 3x3x3 kernel, 8 of anything up to 16 taps.
const MAX_SUMS: usize = 128;

mod kernel {
    use burn_cubecl::cubecl;
    use cubecl::prelude::*;

    /// The sums of output channels `o = o0 .. o0 + tile` and input channel `c`
    /// (`CUBE_POS_Y = (o0 / tile) · C + c`) over chunk `CUBE_POS_X` of the output voxels, for
    /// every tap, stored at `(chunk · O · C + o · C + c) · taps + tap`.
    #[cube(launch)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn weight_gradient<F: Float>(
        x: &Tensor<F>,
        dy: &Tensor<F>,
        dw: &mut Tensor<F>,
        stride_z: u32,
        stride_y: u32,
        stride_x: u32,
        pad_z: u32,
        pad_y: u32,
        pad_x: u32,
        chunk: u32,
        #[comptime] kz: usize,
        #[comptime] ky: usize,
        #[comptime] kx: usize,
        #[comptime] tile: usize,
        #[comptime] units: usize,
        #[define(F)] _dtype: StorageType,
    ) {
        let taps = comptime![kz * ky * kx];
        let pair = CUBE_POS_Y as usize;
        let channels = x.shape(1);
        let (o0, c) = ((pair / channels) * tile, pair % channels);
        let (out_w, out_h, out_d) = (dy.shape(4), dy.shape(3), dy.shape(2));
        let (in_w, in_h, in_d) = (x.shape(4) as i32, x.shape(3) as i32, x.shape(2) as i32);
        let per_sample = out_d * out_h * out_w;
        let start = CUBE_POS_X as usize * chunk as usize;
        let end = min(start + chunk as usize, dy.shape(0) * per_sample);

        let mut sums = Array::<F>::new(comptime![tile * taps]);
        #[unroll]
        for t in 0..tile * taps {
            sums[t] = F::new(0.0);
        }
        let mut g = Array::<F>::new(tile);
        let mut p = start + UNIT_POS as usize;
        while p < end {
            let (n, rest) = (p / per_sample, p % per_sample);
            let (xo, rest) = (rest % out_w, rest / out_w);
            let (yo, zo) = (rest % out_h, rest / out_h);
            let at_dy = n * dy.stride(0) + o0 * dy.stride(1) + zo * dy.stride(2) + yo * dy.stride(3) + xo * dy.stride(4);
            #[unroll]
            for t in 0..tile {
                g[t] = dy[at_dy + t * dy.stride(1)];
            }
            let base = n * x.stride(0) + c * x.stride(1);
            let z0 = (zo as u32 * stride_z) as i32 - pad_z as i32;
            let y0 = (yo as u32 * stride_y) as i32 - pad_y as i32;
            let x0 = (xo as u32 * stride_x) as i32 - pad_x as i32;
            #[unroll]
            for a in 0..kz {
                let zi = z0 + a as i32;
                if zi >= 0 && zi < in_d {
                    #[unroll]
                    for b in 0..ky {
                        let yi = y0 + b as i32;
                        if yi >= 0 && yi < in_h {
                            #[unroll]
                            for d in 0..kx {
                                let xi = x0 + d as i32;
                                if xi >= 0 && xi < in_w {
                                    let at = base + zi as usize * x.stride(2) + yi as usize * x.stride(3) + xi as usize * x.stride(4);
                                    let value = x[at];
                                    #[unroll]
                                    for t in 0..tile {
                                        sums[t * taps + (a * ky + b) * kx + d] += g[t] * value;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p += units;
        }

        // One output channel at a time: tap `k`'s sums of every unit at `k · units + unit`,
        // halved until unit 0 holds them all.
        let mut shared = SharedMemory::<F>::new(taps * units);
        let pairs = dy.shape(1) * channels;
        #[unroll]
        for t in 0..tile {
            #[unroll]
            for k in 0..taps {
                shared[k * units + UNIT_POS as usize] = sums[t * taps + k];
            }
            sync_cube();
            let mut active = CUBE_DIM as usize;
            while active > 1 {
                active /= 2;
                if (UNIT_POS as usize) < active {
                    #[unroll]
                    for k in 0..taps {
                        let from = shared[k * units + UNIT_POS as usize + active];
                        shared[k * units + UNIT_POS as usize] += from;
                    }
                }
                sync_cube();
            }
            let out = (CUBE_POS_X as usize * pairs + (o0 + t) * channels + c) * taps;
            let mut k = UNIT_POS as usize;
            while k < taps {
                dw[out + k] = shared[k * units];
                k += units;
            }
            // Every unit has read the sums before the next channel's overwrite them.
            sync_cube();
        }
    }

    /// `dw[e] = Σ_k partial[k · len + e]`: the chunks' sums added up.
    #[cube(launch)]
    pub(super) fn add_chunks<F: Float>(partial: &Tensor<F>, dw: &mut Tensor<F>, #[define(F)] _dtype: StorageType) {
        let e = ABSOLUTE_POS;
        let len = dw.len();
        if e >= len {
            terminate!();
        }
        let chunks = partial.len() / len;
        let mut sum = F::new(0.0);
        for k in 0..chunks {
            sum += partial[k * len + e];
        }
        dw[e] = sum;
    }
}

/// The weight gradient (`w_shape`, contiguous) of a convolution of `x` that gave `dy`, or `None`
/// where the kernel does not apply (the caller runs burn's): f32 operands, no groups, no
/// dilation, at most [`MAX_TAPS`] taps, sizes within the launch limits.
pub(super) fn weight_grad<R: CubeRuntime>(x: &CubeTensor<R>, dy: &CubeTensor<R>, w_shape: &Shape, options: &ConvOptions<3>) -> Option<CubeTensor<R>> {
    let (xs, ys) = (x.meta.shape(), dy.meta.shape());
    let [kz, ky, kx] = [w_shape[2], w_shape[3], w_shape[4]];
    let taps = kz * ky * kx;
    let tile = TILES.into_iter().find(|t| w_shape[0].is_multiple_of(*t) && t * taps <= MAX_SUMS)?;
    let pairs = w_shape[0] / tile * w_shape[1];
    let outputs = ys[0] * ys[2] * ys[3] * ys[4];
    let chunks = outputs.div_ceil(CHUNK).max(1);
    let fits_u32 = [xs.num_elements(), ys.num_elements()].iter().all(|&n| n <= i32::MAX as usize);
    let supported = x.dtype == DType::F32
        && dy.dtype == DType::F32
        && options.groups == 1
        && options.dilation == [1; 3]
        && taps <= MAX_TAPS
        && pairs <= MAX_CUBES
        && chunks <= MAX_CUBES
        && fits_u32;
    if !supported {
        return None;
    }
    let empty = |shape: Shape| empty_device_dtype(x.client.clone(), x.device.clone(), shape, x.dtype);
    let dw = empty(w_shape.clone());
    let partial = match chunks {
        1 => dw.clone(),
        _ => empty(Shape::new([chunks, w_shape[0], w_shape[1], kz, ky, kx])),
    };
    let [sz, sy, sx] = options.stride.map(|s| s as u32);
    let [pz, py, px] = options.padding.map(|p| p as u32);
    kernel::weight_gradient::launch::<R>(
        &x.client,
        CubeCount::Static(chunks as u32, pairs as u32, 1),
        CubeDim::new_1d(UNITS as u32),
        x.clone().into_tensor_arg(),
        dy.clone().into_tensor_arg(),
        partial.clone().into_tensor_arg(),
        sz,
        sy,
        sx,
        pz,
        py,
        px,
        CHUNK as u32,
        kz,
        ky,
        kx,
        tile,
        UNITS,
        x.dtype.into(),
    );
    if chunks > 1 {
        let (count, dim) = elementwise_launch(&dw);
        kernel::add_chunks::launch::<R>(&x.client, count, dim, partial.into_tensor_arg(), dw.clone().into_tensor_arg(), x.dtype.into());
    }
    Some(dw)
}
